/*
 * The entrypoint of wso2img's generic sample bases (builtin:wso2am-4.3.0,
 * builtin:wso2am-4.1.0), linux/amd64. The sample has no shell, so this tiny
 * static program stands in for the official docker-entrypoint.sh: it prints
 * the start line with its arguments, then what a customization added —
 * every entry of repository/components/lib and repository/components/dropins
 * and the hostname line of repository/conf/deployment.toml, read below
 * $WSO2_SERVER_HOME — and exits 0 (1 when WSO2_SERVER_HOME is not a folder).
 *
 * The file is the whole ELF image: header, one read+execute segment, code and
 * strings; a 64 KiB buffer is taken from the stack. build.sh assembles it
 * with GNU as and keeps the .text bytes (objcopy -O binary): no linker, so
 * the bytes depend only on this text.
 */
	.set BASE, 0x400000
	.set BUFSZ, 65536
	.set SYS_read, 0
	.set SYS_write, 1
	.set SYS_close, 3
	.set SYS_exit, 60
	.set SYS_chdir, 80
	.set SYS_getdents64, 217
	.set SYS_openat, 257
	.set AT_FDCWD, -100

	.text
ehdr:
	.byte	0x7f, 0x45, 0x4c, 0x46, 2, 1, 1, 0	/* ELF, 64-bit, little-endian, v1, System V */
	.quad	0
	.short	2					/* ET_EXEC */
	.short	62					/* EM_X86_64 */
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
	.quad	0x1000					/* p_align */

/* Registers kept across calls: rbx (home, then the folder listed), rbp (fd),
   r12-r14 (argc/argv/envp, then cursors), r15 (buffer). */
_start:
	mov	(%rsp), %r12
	lea	8(%rsp), %r13
	lea	8(%r13,%r12,8), %r14
	sub	$BUFSZ, %rsp
	mov	%rsp, %r15
find_home:
	mov	(%r14), %rsi
	test	%rsi, %rsi
	jz	no_home
	add	$8, %r14
	lea	key(%rip), %rdi
	mov	$(key_end - key), %ecx
	repe cmpsb
	jne	find_home
	mov	%rsi, %rbx

	lea	msg_start(%rip), %rsi
	call	puts
	mov	%rbx, %rsi
	mov	%rbx, %rdi
1:	movb	(%rdi), %al
	inc	%rdi
	test	%al, %al
	jz	2f
	cmp	$47, %al				/* '/' */
	jne	1b
	mov	%rdi, %rsi
	jmp	1b
2:	call	puts					/* the product folder's name */
	lea	msg_with(%rip), %rsi
	call	puts
	mov	$1, %ebp
3:	cmp	%r12, %rbp
	jae	4f
	lea	space(%rip), %rsi
	call	puts
	mov	(%r13,%rbp,8), %rsi
	call	puts
	inc	%rbp
	jmp	3b
4:	lea	newline(%rip), %rsi
	call	puts

	mov	$SYS_chdir, %eax
	mov	%rbx, %rdi
	syscall
	test	%rax, %rax
	js	no_home
	lea	lib(%rip), %rbx
	call	list
	lea	dropins(%rip), %rbx
	call	list
	call	hostname
	xor	%edi, %edi
	jmp	exit
no_home:
	lea	msg_no_home(%rip), %rsi
	call	puts
	mov	$1, %edi
exit:
	mov	$SYS_exit, %eax
	syscall

/* puts: the NUL-terminated string at rsi to stdout; write: rdx bytes at rsi. */
puts:
	mov	%rsi, %rdx
1:	cmpb	$0, (%rdx)
	je	2f
	inc	%rdx
	jmp	1b
2:	sub	%rsi, %rdx
write:
	mov	$1, %edi
	mov	$SYS_write, %eax
	syscall
	ret

/* list: "<folder>: <name>" for every entry of the folder named at rbx. */
list:
	mov	$SYS_openat, %eax
	mov	$AT_FDCWD, %rdi
	mov	%rbx, %rsi
	xor	%edx, %edx
	xor	%r10d, %r10d
	syscall
	test	%rax, %rax
	js	9f
	mov	%rax, %rbp
1:	mov	$SYS_getdents64, %eax
	mov	%rbp, %rdi
	mov	%r15, %rsi
	mov	$BUFSZ, %edx
	syscall
	test	%rax, %rax
	jle	8f
	mov	%r15, %r12
	lea	(%r15,%rax), %r13
2:	cmp	%r13, %r12
	jae	1b
	lea	19(%r12), %r14				/* d_name */
	cmpb	$46, (%r14)				/* skip "." and ".." */
	jne	3f
	cmpb	$0, 1(%r14)
	je	4f
	cmpb	$46, 1(%r14)
	jne	3f
	cmpb	$0, 2(%r14)
	je	4f
3:	mov	%rbx, %rsi
	call	puts
	lea	colon(%rip), %rsi
	call	puts
	mov	%r14, %rsi
	call	puts
	lea	newline(%rip), %rsi
	call	puts
4:	movzwl	16(%r12), %eax				/* d_reclen */
	add	%rax, %r12
	jmp	2b
8:	mov	$SYS_close, %eax
	mov	%rbp, %rdi
	syscall
9:	ret

/* hostname: every line of deployment.toml whose first word starts with "hostname". */
hostname:
	mov	$SYS_openat, %eax
	mov	$AT_FDCWD, %rdi
	lea	toml(%rip), %rsi
	xor	%edx, %edx
	xor	%r10d, %r10d
	syscall
	test	%rax, %rax
	js	9f
	mov	%rax, %rbp
	mov	%rbp, %rdi
	mov	%r15, %rsi
	mov	$BUFSZ, %edx
	mov	$SYS_read, %eax
	syscall
	mov	%rax, %r13
	mov	$SYS_close, %eax
	mov	%rbp, %rdi
	syscall
	test	%r13, %r13
	jle	9f
	mov	%r15, %r12
	add	%r15, %r13
1:	cmp	%r13, %r12
	jae	9f
	movb	(%r12), %al
	cmp	$32, %al				/* skip blanks */
	je	2f
	cmp	$9, %al
	jne	3f
2:	inc	%r12
	jmp	1b
3:	mov	%r12, %r14
4:	cmp	%r13, %r14				/* r14: end of line */
	jae	5f
	cmpb	$10, (%r14)
	je	5f
	inc	%r14
	jmp	4b
5:	mov	%r14, %rax
	sub	%r12, %rax
	cmp	$8, %rax
	jb	6f
	mov	(%r12), %rax
	movabs	$0x656d616e74736f68, %rcx		/* "hostname" */
	cmp	%rcx, %rax
	jne	6f
	lea	toml(%rip), %rsi
	call	puts
	lea	colon(%rip), %rsi
	call	puts
	mov	%r12, %rsi
	mov	%r14, %rdx
	sub	%r12, %rdx
	call	write
	lea	newline(%rip), %rsi
	call	puts
6:	lea	1(%r14), %r12
	jmp	1b
9:	ret

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
