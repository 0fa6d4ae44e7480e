"""Post-service feedback: surveys per touchpoint, responses, invitations, the rating pages."""
