"""What Car Studio spends: the ledger of predictions and the budgets it keeps to."""
