"""What a Lambda@Edge function sees and may return: events, header maps, the origin object,
the rules for results, and running a behavior's function at a trigger."""
