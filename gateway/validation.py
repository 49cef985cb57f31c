"""Request body schemas named by routes: msgspec Structs for JSON, XSD for XML.

``resolve_schema("population.CitizenLookupRequest")`` finds the Struct in
``schemas/population``; a name ending in ``.xsd`` is an XML Schema file,
relative to the config file or to ``schemas/``; any other plain name is a
kind an adapter package brings (``adapters.plugin``). Each returns an object whose
``validate(body)`` gives the decoded data or raises ``BodyInvalid`` listing
every error with its path.
"""

from __future__ import annotations

import importlib
import os
import re
from functools import lru_cache
from typing import Any

import msgspec
from lxml import etree

import schemas
from adapters import registry
from adapters.bodies import BodyError, BodyInvalid, BodySchema, decode_json
from adapters.errors import MalformedBody, XmlForbidden
from gateway.problems import Problem
from schemas import xmlsafe
from schemas.typecheck import collect_errors, format_path

SCHEMAS_DIR = os.path.dirname(os.path.abspath(schemas.__file__))


class SchemaNotFound(LookupError):
    pass


def body_problem(invalid: BodyInvalid) -> Problem:
    """What the caller sees of a body its schema refused: every error, with its path."""
    return Problem.of(invalid.rejection())


class JsonBody:
    media_type = "application/json"

    def __init__(self, name: str, struct: type[msgspec.Struct]) -> None:
        self.name = name
        self.struct = struct

    def validate(self, body: bytes) -> Any:
        data = decode_json(body)
        try:
            msgspec.convert(data, self.struct)
        except msgspec.ValidationError:
            errors = collect_errors(data, self.struct)
            raise BodyInvalid([BodyError(format_path(e.path), e.message) for e in errors]) from None
        return data

    def json_schema(self) -> tuple[dict[str, Any], dict[str, Any]]:
        """(schema of the body, components it refers to) for OpenAPI."""
        (body,), components = msgspec.json.schema_components(
            [self.struct], ref_template="#/components/schemas/{name}"
        )
        return body, components


class XmlBody:
    media_type = "application/xml"

    def __init__(self, name: str, path: str) -> None:
        self.name = name
        self.path = path
        self.schema = etree.XMLSchema(xmlsafe.parse_file(path))

    def validate(self, body: bytes) -> Any:
        try:
            tree = xmlsafe.parse(body)
        except xmlsafe.UnsafeXml as exc:
            raise BodyInvalid([BodyError("/", str(exc))], error=XmlForbidden) from None
        except etree.XMLSyntaxError as exc:
            error = BodyError("/", f"not well-formed XML: {exc}")
            raise BodyInvalid([error], error=MalformedBody) from None
        if not self.schema.validate(tree):
            errors = [
                BodyError(
                    _element_path(tree, entry.path),
                    f"line {entry.line}: {_strip_ns(entry.message)}",
                )
                for entry in self.schema.error_log  # type: ignore[attr-defined]
                if _NOISE not in entry.message
            ]
            raise BodyInvalid(errors)
        return None


_NAMESPACE = re.compile(r"\{[a-z]+:[^}]*\}")
# libxml2 follows a facet error with this non-error on the same element.
_NOISE = "No precomputed value available"


def _strip_ns(message: str) -> str:
    return _NAMESPACE.sub("", message)


_STEP = re.compile(r"(?:(?P<prefix>[^:/\[\]]+):)?(?P<name>[^:/\[\]]+)(?:\[(?P<index>[0-9]+)\])?")


def _element_path(tree: etree._ElementTree, xpath: str | None) -> str:
    """``/edXML/edXMLEnvelope/.../To[2]/OrganId`` rather than libxml2's ``/*/*/*[2]/*``.

    libxml2 writes a step ``*[n]`` for an element in a default namespace (n counts every
    element sibling) and ``prefix:name[n]`` for a prefixed one (n counts siblings of that
    name and prefix). The steps are walked here, not evaluated as XPath: XPath would need
    the document's prefixes declared, and a prefix may mean different namespaces in
    different places. A path that cannot be walked is returned as libxml2 wrote it.
    """
    element = _walk(tree, xpath) if xpath else None
    if element is None:
        return xpath or "/"
    parts = []
    current: etree._Element | None = element
    while current is not None:
        name = etree.QName(current).localname
        parent = current.getparent()
        same = [e for e in parent if e.tag == current.tag] if parent is not None else [current]
        parts.append(f"{name}[{same.index(current) + 1}]" if len(same) > 1 else name)
        current = parent
    return "/" + "/".join(reversed(parts))


def _walk(tree: etree._ElementTree, xpath: str) -> etree._Element | None:
    """The element libxml2's error path names (see ``_element_path``), or None."""
    if not xpath.startswith("/"):
        return None
    candidates = [tree.getroot()]
    element: etree._Element | None = None
    for step in xpath[1:].split("/"):
        match = _STEP.fullmatch(step)
        if match is None:
            return None
        prefix, name = match["prefix"], match["name"]
        if name != "*":
            candidates = [
                e for e in candidates if e.prefix == prefix and etree.QName(e).localname == name
            ]
        index = int(match["index"] or 1) - 1
        if index >= len(candidates):
            return None
        element = candidates[index]
        candidates = [child for child in element if isinstance(child.tag, str)]
    return element


def resolve_schema(ref: str, config_dir: str) -> BodySchema:
    return _resolve(ref, config_dir)


@lru_cache(maxsize=256)
def _resolve(ref: str, config_dir: str) -> BodySchema:
    kind = registry.body_schemas().get(ref)
    if kind is not None:  # a kind an adapter package brings, e.g. edxml
        schema: BodySchema = registry.load(kind)()
        return schema
    if ref.endswith(".xsd"):
        for base in (config_dir, SCHEMAS_DIR):
            path = os.path.join(base, ref)
            if os.path.isfile(path):
                try:
                    return XmlBody(ref, path)
                except (etree.XMLSchemaParseError, etree.XMLSyntaxError) as exc:
                    raise SchemaNotFound(f"{path} is not a usable XML Schema: {exc}") from None
        raise SchemaNotFound(f"no XSD file {ref!r} next to the config or in schemas/")
    module_name, _, attr = ref.rpartition(":") if ":" in ref else ref.rpartition(".")
    if not module_name or not attr:
        raise SchemaNotFound(f"{ref!r} is neither 'module.Struct' nor a .xsd file")
    if ":" not in ref:
        module_name = f"schemas.{module_name}"
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError:
        raise SchemaNotFound(f"no schema module {module_name!r}") from None
    except Exception as exc:  # a broken schema module must not crash a config check
        raise SchemaNotFound(f"schema module {module_name!r} fails to import: {exc}") from None
    struct = getattr(module, attr, None)
    if not (isinstance(struct, type) and issubclass(struct, msgspec.Struct)):
        raise SchemaNotFound(f"{module_name} has no msgspec Struct named {attr!r}")
    return JsonBody(ref, struct)
