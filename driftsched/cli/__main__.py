from driftsched.cli import main

main()
