"""The self-paced onboarding course: lessons as data, and a trainee's course run on a session of kind course."""
