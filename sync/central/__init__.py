"""The city's reference central consumer: storage, device registry, ledger publishing,
reconciliation and the fleet page. Its own database; never the device models in pos/db.py."""
