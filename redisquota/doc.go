// Package redisquota shares a rate-limit quota through Redis.
package redisquota
