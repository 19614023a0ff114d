"""The nurture campaign language: parse, check, compile."""
