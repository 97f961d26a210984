from claif_codd import main

main()
