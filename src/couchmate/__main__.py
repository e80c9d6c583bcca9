from couchmate.cli import main

main()
