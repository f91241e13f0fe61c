"""Example third-party plugin for Centralita: VIP callers get a higher queue priority."""
