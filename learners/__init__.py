"""Online learners behind one small protocol: learn one/many, predict one/many, state to bytes."""
