from thresher.services.scanner.server import main

main()
