"""Levels: the exercise pitched at a junior, a mid-level or a senior candidate, or varied (dashboard design), as
data (levels/*.yaml): the workspace's starting point, the brief, the scenario, the time box and the rubric's
overlay."""
