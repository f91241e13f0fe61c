"""The SIP channel: a sans-IO RFC 3261 core (``plugins.sip.sansio``) and its trio shell."""
