from passline.cli import main

main()
