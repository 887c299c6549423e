"""The reviewer's page (`floorgate eval review RESULTS`): a local server where reviewers turn an
evaluation's outputs into outcomes, blind, by keyboard, saved at once to the results file.
docs/review.md describes it."""
