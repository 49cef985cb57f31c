"""The national population database (CSDL quốc gia về dân cư): adapter and mock."""

from adapters.population.adapter import PopulationAdapter, PopulationSettings

__all__ = ["PopulationAdapter", "PopulationSettings"]
