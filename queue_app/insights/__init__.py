"""Busy hours: the typical wait by local hour of the week (from history), the live wait now,
and nearby branches of the network with shorter waits."""
