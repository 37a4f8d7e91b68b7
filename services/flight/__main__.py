from thresher.services.flight.server import main

main()
