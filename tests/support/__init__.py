"""What several test modules share and is not a fixture: clients for a door,
request bodies, small protocol helpers. Fixtures live in tests/conftest.py;
test modules import from here, never from one another."""
