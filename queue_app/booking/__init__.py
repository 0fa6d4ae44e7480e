"""Appointment booking: slots, holds, bookings and their changes (see models.py)."""
