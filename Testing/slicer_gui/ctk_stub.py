"""``ctk`` stand-in: module files import it; nothing is used outside widgets."""
