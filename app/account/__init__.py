"""Getting back into an account and keeping it: password reset and change, verified
addresses, change of address, and the list of sessions (links go out by ``app.mail``)."""
