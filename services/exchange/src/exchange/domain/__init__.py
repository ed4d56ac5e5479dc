"""The exchange domain: the form catalogue, the transnational case and its forms, the legal basis of a message
and the evidence chain. Pure logic: no database, no network, time handed in."""
