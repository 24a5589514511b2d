"""The five study definitions, one module each."""
