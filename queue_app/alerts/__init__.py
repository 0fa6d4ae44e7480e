"""Alert thresholds of live management: rules, alerts and their timeline."""
