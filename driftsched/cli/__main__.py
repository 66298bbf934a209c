from driftsched.cli import run

run()
