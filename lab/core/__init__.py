"""What each lab verb does, as functions the command line (lab/verbs) and tests call; one module
per verb or family of verbs (the lifecycle's status, halt and destroy share one)."""
