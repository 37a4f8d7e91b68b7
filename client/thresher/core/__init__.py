"""Modules shared by every part of Thresher: the client, the command line, the gallery and the services."""
