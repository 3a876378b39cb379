"""mlsandbox: run, share and grade ML monitoring sandboxes.

cli/        the command line: parse, dispatch, one error handler
console/    the interviewer's console (a web app over every room on the machine)
course/     the self-paced onboarding course
sessions/   interview sessions: workspace, stack, history, grades, archive
incidents/  packs for the root-cause exercise
stack/      how a sandbox runs: the Sandbox interface, its backends, processes, state, shared services
services/   small processes of their own (the alert receiver, Grafana's secret)
layout.py, config.py, errors.py, say.py, data_files.py: shared by all of the above
"""
