"""The contracts every part shares: event records and their validation, the topic
catalogue, the features of a (request, candidate) pair, the rows each table stores."""
