package redisquota

// LearnHash is the SHA-1 of the script that writes a learned quota, for the
// tests that count its calls.
var LearnHash = learnScript.Hash()
