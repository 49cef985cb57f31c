"""The national population database (CSDL quốc gia về dân cư): adapter and mock."""
