package resilient

import "strings"

// This file tells the top-level resource of a route whose quota a bucket
// names (Discord's X-RateLimit-Bucket, see ratelimit_resource.go).

// maxTopLevelID is the longest id topLevelID takes: a Discord snowflake, a
// uint64, has 20 digits at most.
const maxTopLevelID = 20

// topLevelID returns the id of the route's top-level resource, as Discord
// names them: the numeric id, of up to maxTopLevelID digits, that follows
// the path's first segment past the API's prefix (see isPrefixSegment)
// when that segment is "channels", "guilds" or "webhooks"
// (/api/v10/channels/{channel.id}/messages → the channel's id), "" for a
// path without one. Discord names a route's bucket with one hash for every
// channel, guild and webhook, and counts each of them apart: a limit spent
// on one channel leaves another channel's whole. A bucket's partition is
// therefore that of its hash and this id, so that one channel's spent
// bucket holds no other channel's requests, where a plain client's go
// through; the routes of one channel that share a bucket (sending and
// editing its messages) still share its partition, as the server counts
// them. Any other id in a path (a user's, an application's, and a
// channel's or guild's deeper than the route's first segment, as in
// /users/@me/guilds/{guild.id}/member, which Discord counts across guilds,
// as discord.js keys it) counts no quota of its own: its routes share the
// bucket's partition, as before. A webhook's token, which Discord counts
// with its id, is left out: a partition's name shows in errors.
func topLevelID(path string) string {
	for {
		seg, rest, more := strings.Cut(strings.TrimPrefix(path, "/"), "/")
		if !more {
			return ""
		}
		if isPrefixSegment(seg) {
			path = rest
			continue
		}
		switch seg {
		case "channels", "guilds", "webhooks":
			id, _, _ := strings.Cut(rest, "/")
			if len(id) <= maxTopLevelID && allDigits(id) {
				return seg[:len(seg)-1] + " " + id
			}
		}
		return ""
	}
}
