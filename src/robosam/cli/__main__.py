from robosam.cli import main

main()
