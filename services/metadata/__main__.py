from thresher.services.metadata.server import main

main()
