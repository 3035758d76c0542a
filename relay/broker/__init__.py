"""The Pact Broker seen from the relay: the webhook that points a broker at the relay."""
