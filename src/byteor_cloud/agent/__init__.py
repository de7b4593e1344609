"""The reference agent (`byteor-agent`)."""
