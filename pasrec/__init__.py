"""PASRec-push: `model` (the networks and checkpoints), `training` and `service` above it, and
`replay` and `cli` above both."""
