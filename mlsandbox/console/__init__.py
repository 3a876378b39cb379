"""The interviewer's console (app.py) and the candidate's dashboard preview (preview.py)."""
