"""People who may use Car Studio: users, their sign-ins and API tokens."""
