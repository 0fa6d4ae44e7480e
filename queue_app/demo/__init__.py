"""The demo network: real-feeling branches, services, counters, staff and customers."""
