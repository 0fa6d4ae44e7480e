"""Which waiting ticket a counter calls next: routing policies as pure functions."""
