"""Unattended devices (kiosks, lobby displays): pairing with a branch and their tokens."""
