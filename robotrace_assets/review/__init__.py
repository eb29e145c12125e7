"""Review: reviewer decisions, the review-complete set and the regression bank."""
