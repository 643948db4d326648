from randadv.cli import main

main()
