/*
 * The entrypoint of wso2img's generic sample bases (builtin:wso2am-4.3.0,
 * builtin:wso2am-4.1.0), linux/arm64: the same program as x86_64.S. It prints
 * the start line with its arguments, then what a customization added —
 * every entry of repository/components/lib and repository/components/dropins
 * and the hostname line of repository/conf/deployment.toml, read below
 * $WSO2_SERVER_HOME — and exits 0 (1 when WSO2_SERVER_HOME is not a folder).
 *
 * The file is the whole ELF image: header, one read+execute segment, code and
 * strings; a 64 KiB buffer is taken from the stack. build.sh assembles it
 * with GNU as and keeps the .text bytes (objcopy -O binary): no linker.
 */
	.set BASE, 0x400000
	.set SYS_getdents64, 61
	.set SYS_openat, 56
	.set SYS_close, 57
	.set SYS_read, 63
	.set SYS_write, 64
	.set SYS_chdir, 49
	.set SYS_exit, 93
	.set AT_FDCWD, -100

	.text
ehdr:
	.byte	0x7f, 0x45, 0x4c, 0x46, 2, 1, 1, 0	/* ELF, 64-bit, little-endian, v1, System V */
	.quad	0
	.short	2					/* ET_EXEC */
	.short	183					/* EM_AARCH64 */
	.long	1
	.quad	BASE + _start - ehdr			/* e_entry */
	.quad	phdr - ehdr				/* e_phoff */
	.quad	0					/* e_shoff */
	.long	0					/* e_flags */
	.short	64, 56, 1				/* e_ehsize, e_phentsize, e_phnum */
	.short	0, 0, 0					/* no section headers */
phdr:
	.long	1					/* PT_LOAD */
	.long	5					/* PF_R | PF_X */
	.quad	0					/* p_offset */
	.quad	BASE, BASE				/* p_vaddr, p_paddr */
	.quad	end - ehdr, end - ehdr			/* p_filesz, p_memsz */
	.quad	0x10000					/* p_align */

/* Registers: x19-x21 (argc/argv/envp, then cursors), x22 (buffer), x23 (home),
   x24 (argument index), x25 (folder listed), x26 (fd), x27 ("hostname"),
   x28 (return address of list and hostname); svc keeps all but x0. */
	.balign	4
_start:
	ldr	x19, [sp]
	add	x20, sp, #8
	add	x21, x20, x19, lsl #3
	add	x21, x21, #8
	sub	sp, sp, #16, lsl #12			/* 64 KiB buffer */
	mov	x22, sp
find_home:
	ldr	x1, [x21], #8
	cbz	x1, no_home
	adr	x2, key
	mov	x3, #(key_end - key)
1:	ldrb	w4, [x1], #1
	ldrb	w5, [x2], #1
	cmp	w4, w5
	b.ne	find_home
	subs	x3, x3, #1
	b.ne	1b
	mov	x23, x1

	adr	x1, msg_start
	bl	puts
	mov	x1, x23
	mov	x2, x23
1:	ldrb	w3, [x2], #1
	cbz	w3, 2f
	cmp	w3, #47					/* '/' */
	b.ne	1b
	mov	x1, x2
	b	1b
2:	bl	puts					/* the product folder's name */
	adr	x1, msg_with
	bl	puts
	mov	x24, #1
3:	cmp	x24, x19
	b.hs	4f
	adr	x1, space
	bl	puts
	ldr	x1, [x20, x24, lsl #3]
	bl	puts
	add	x24, x24, #1
	b	3b
4:	adr	x1, newline
	bl	puts

	mov	x0, x23
	mov	x8, #SYS_chdir
	svc	#0
	cmp	x0, #0
	b.lt	no_home
	adr	x25, lib
	bl	list
	adr	x25, dropins
	bl	list
	bl	hostname
	mov	x0, #0
	b	exit
no_home:
	adr	x1, msg_no_home
	bl	puts
	mov	x0, #1
exit:
	mov	x8, #SYS_exit
	svc	#0

/* puts: the NUL-terminated string at x1 to stdout; write: x2 bytes at x1. */
puts:
	mov	x2, x1
1:	ldrb	w3, [x2]
	cbz	w3, 2f
	add	x2, x2, #1
	b	1b
2:	sub	x2, x2, x1
write:
	mov	x0, #1
	mov	x8, #SYS_write
	svc	#0
	ret

/* list: "<folder>: <name>" for every entry of the folder named at x25. */
list:
	mov	x28, x30
	mov	x0, #AT_FDCWD
	mov	x1, x25
	mov	x2, #0
	mov	x3, #0
	mov	x8, #SYS_openat
	svc	#0
	cmp	x0, #0
	b.lt	9f
	mov	x26, x0
1:	mov	x0, x26
	mov	x1, x22
	mov	x2, #0x10000
	mov	x8, #SYS_getdents64
	svc	#0
	cmp	x0, #0
	b.le	8f
	mov	x19, x22
	add	x20, x22, x0
2:	cmp	x19, x20
	b.hs	1b
	add	x21, x19, #19				/* d_name */
	ldrb	w3, [x21]				/* skip "." and ".." */
	cmp	w3, #46
	b.ne	3f
	ldrb	w3, [x21, #1]
	cbz	w3, 4f
	cmp	w3, #46
	b.ne	3f
	ldrb	w3, [x21, #2]
	cbz	w3, 4f
3:	mov	x1, x25
	bl	puts
	adr	x1, colon
	bl	puts
	mov	x1, x21
	bl	puts
	adr	x1, newline
	bl	puts
4:	ldrh	w3, [x19, #16]				/* d_reclen */
	add	x19, x19, x3
	b	2b
8:	mov	x0, x26
	mov	x8, #SYS_close
	svc	#0
9:	mov	x30, x28
	ret

/* hostname: every line of deployment.toml whose first word starts with "hostname". */
hostname:
	mov	x28, x30
	mov	x0, #AT_FDCWD
	adr	x1, toml
	mov	x2, #0
	mov	x3, #0
	mov	x8, #SYS_openat
	svc	#0
	cmp	x0, #0
	b.lt	9f
	mov	x26, x0
	mov	x1, x22
	mov	x2, #0x10000
	mov	x8, #SYS_read
	svc	#0
	mov	x20, x0
	mov	x0, x26
	mov	x8, #SYS_close
	svc	#0
	cmp	x20, #0
	b.le	9f
	mov	x19, x22
	add	x20, x22, x20
	movz	x27, #0x6f68				/* "hostname", little-endian */
	movk	x27, #0x7473, lsl #16
	movk	x27, #0x616e, lsl #32
	movk	x27, #0x656d, lsl #48
1:	cmp	x19, x20
	b.hs	9f
	ldrb	w3, [x19]
	cmp	w3, #32					/* skip blanks */
	b.eq	2f
	cmp	w3, #9
	b.ne	3f
2:	add	x19, x19, #1
	b	1b
3:	mov	x21, x19
4:	cmp	x21, x20				/* x21: end of line */
	b.hs	5f
	ldrb	w3, [x21]
	cmp	w3, #10
	b.eq	5f
	add	x21, x21, #1
	b	4b
5:	sub	x2, x21, x19
	cmp	x2, #8
	b.lo	6f
	ldr	x3, [x19]
	cmp	x3, x27
	b.ne	6f
	adr	x1, toml
	bl	puts
	adr	x1, colon
	bl	puts
	mov	x1, x19
	sub	x2, x21, x19
	bl	write
	adr	x1, newline
	bl	puts
6:	add	x19, x21, #1
	b	1b
9:	mov	x30, x28
	ret

key:	.ascii	"WSO2_SERVER_HOME="
key_end:
msg_start:	.asciz	"WSO2 API Manager sample "
msg_with:	.asciz	" starting with:"
msg_no_home:	.asciz	"WSO2 Docker product home does not exist (WSO2_SERVER_HOME)\n"
space:		.asciz	" "
colon:		.asciz	": "
newline:	.asciz	"\n"
lib:		.asciz	"repository/components/lib"
dropins:	.asciz	"repository/components/dropins"
toml:		.asciz	"repository/conf/deployment.toml"
end:
