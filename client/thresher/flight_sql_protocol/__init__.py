"""Generated code only: the Flight SQL messages of ``protos/arrow/flight/protocol/sql`` (see that file)."""
