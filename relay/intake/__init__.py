"""Events in: parse, de-duplicate, match and store them; webhook definitions; apply -f."""
