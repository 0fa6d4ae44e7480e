"""Cases: unhappy customers followed up on an escalation ladder."""
