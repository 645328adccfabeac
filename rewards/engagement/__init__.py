"""Citizen engagement beyond points: satisfaction ratings of handled reports and milestones."""
