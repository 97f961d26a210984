from claif_codd.cli import main

main()
