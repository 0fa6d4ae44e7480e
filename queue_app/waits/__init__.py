"""Estimated wait (EWT): the branch state, learned distributions, the estimator that simulates
the branch's own routing forward from the live state, the replay of a logged day with its
baselines, and a branch-day simulator for development and staffing checks."""
