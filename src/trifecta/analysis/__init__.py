"""From finished runs to what the paper shows: tidy tables, Tables 1-3, the scorecard, probes, weights, figures."""
